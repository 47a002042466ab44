"""Test support: throwaway PostgreSQL and Redis servers (see ``services``) and their pytest fixtures."""
