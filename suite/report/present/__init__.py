"""Present: numbers as text, tables, plots. Imports only read and compute."""
