"""Operations: the background worker, team-mode accounts, backup and restore."""
