"""`council eval`: does the council beat its best member, on questions with known answers."""
