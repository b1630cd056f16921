"""Stage 6: tables, aggregation across compositions, and plots."""
