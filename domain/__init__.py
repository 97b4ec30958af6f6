"""What every domain package (work orders, accounts, the ACD, seats, knowledge) shares."""
