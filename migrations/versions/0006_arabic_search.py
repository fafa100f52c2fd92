"""Arabic search: products' search forms rewritten with light stemming (the article and
clitics, feminine and plural endings), and on PostgreSQL two generated full-text vectors
(arabic and english) with GIN indexes. SQLite, which cannot add a STORED generated
column, gets plain columns that stay NULL (it searches the search form with LIKE).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 15:08:12.338137
"""

from alembic import op
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from shop.search import search_form

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

TITLE_VECTOR = ("to_tsvector('arabic'::regconfig, search_title) || "
                "to_tsvector('english'::regconfig, search_title)")
TEXT_VECTOR = ("setweight(to_tsvector('arabic'::regconfig, search_title) || "
               "to_tsvector('english'::regconfig, search_title), 'A') || "
               "to_tsvector('arabic'::regconfig, search_text) || "
               "to_tsvector('english'::regconfig, search_text)")


def _rewrite_search_forms() -> None:
    """The stored search forms in the new (stemmed) form, as shop.models now writes."""
    bind = op.get_bind()
    products = sa.table("products", sa.column("id"), sa.column("title_ar"),
                        sa.column("title_en"), sa.column("description_ar"),
                        sa.column("description_en"), sa.column("search_title"),
                        sa.column("search_text"))
    rows = bind.execute(sa.select(products.c.id, products.c.title_ar, products.c.title_en,
                                  products.c.description_ar,
                                  products.c.description_en)).all()
    for pid, t_ar, t_en, d_ar, d_en in rows:
        bind.execute(products.update().where(products.c.id == pid).values(
            search_title=search_form(f"{t_ar or ''} {t_en or ''}"),
            search_text=search_form(f"{t_ar or ''} {t_en or ''} {d_ar or ''} {d_en or ''}")))


def upgrade() -> None:
    _rewrite_search_forms()
    if op.get_bind().dialect.name != "postgresql":
        op.add_column('products', sa.Column('search_title_vector', sa.Text(), nullable=True))
        op.add_column('products', sa.Column('search_vector', sa.Text(), nullable=True))
        return
    op.add_column('products', sa.Column('search_title_vector', postgresql.TSVECTOR(),
                                        sa.Computed(TITLE_VECTOR, persisted=True), nullable=True))
    op.add_column('products', sa.Column('search_vector', postgresql.TSVECTOR(),
                                        sa.Computed(TEXT_VECTOR, persisted=True), nullable=True))
    op.create_index('ix_products_search_title_vector', 'products', ['search_title_vector'],
                    unique=False, postgresql_using='gin', postgresql_with={'fastupdate': 'off'})
    op.create_index('ix_products_search_vector', 'products', ['search_vector'], unique=False,
                    postgresql_using='gin', postgresql_with={'fastupdate': 'off'})


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index('ix_products_search_vector', table_name='products')
        op.drop_index('ix_products_search_title_vector', table_name='products')
    op.drop_column('products', 'search_vector')
    op.drop_column('products', 'search_title_vector')
