"""The settings package; its modules (``production``, ``local``) are not needed here."""
