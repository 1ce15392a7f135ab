"""Models and views shared by the in-process Django tests."""
