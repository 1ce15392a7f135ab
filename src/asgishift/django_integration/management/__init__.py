"""Management commands of asgishift's Django app."""
