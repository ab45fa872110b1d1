"""Analyzers: streaming, versioned computations over decoded audio."""
