"""Job types: what each costs, which queue carries it, how its request is validated, how it
runs and how it is shown."""
