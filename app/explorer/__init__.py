"""The local atlas explorer (`circuitlake serve`): a read-only web app over a warehouse."""
