"""`kplab sweep`: one scenario over a grid of parameter values, variants and seeds, run on Dask."""
