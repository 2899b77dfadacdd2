"""Fine-tuning rounds: corrections from the store plus replay, trained into a new inactive version."""
