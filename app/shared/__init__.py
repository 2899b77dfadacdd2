"""What every page uses: the cached model and store, the sign-in gate."""
