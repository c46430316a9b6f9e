"""Monthly awareness broadcasts: the message pack, the monthly schedule and delivery."""
