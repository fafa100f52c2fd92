"""Demo data for tracking: a sample customs tariff and a few parcels with timelines."""
