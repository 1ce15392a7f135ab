"""Test app of the async generic views: posts with an author, tags and sync/async twins."""
