"""The run plan: decisions made from the data once, before any model is built."""
