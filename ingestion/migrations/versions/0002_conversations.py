"""Empty: conversations and messages (created here by Sift 0.1) now belong to the app's history.

The revision stays so that stores at "0002" still find their place in this history. The app's own migrations
(``sift.app.migrations``, version table ``sift_app_version``) create conversations, messages and rerank_traces on a
fresh database and keep them, with their rows, on a store made by Sift 0.1.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-22
"""

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
