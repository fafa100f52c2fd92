"""The shop's use cases: merchants, the catalog, the cart. Each public function commits
at most once; helpers flush."""
