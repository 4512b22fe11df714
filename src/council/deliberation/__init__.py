"""The council: seats, modes, prompts, ranking."""
