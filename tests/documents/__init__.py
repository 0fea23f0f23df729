"""Tests of the documents service: models, folder loading, samples and PDF rendering."""
