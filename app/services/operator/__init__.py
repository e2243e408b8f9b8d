"""The operator's side of the console: its staff and their sign-in (`staff`), the operator API's
keys (`keys`) and what staff and keys do to customer accounts (`accounts`). Nothing here is
reachable with a customer's session or API key: operators are their own table, with their own
cookie and keys, and every function takes the `Operator` (or the key's `Author`) it acts as."""
