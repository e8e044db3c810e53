"""The platform team's own stacks, deployed beside trainstack's in each environment's stage."""
