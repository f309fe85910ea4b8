"""Reading run records back and turning them into tables and figures; never imports the training code."""
