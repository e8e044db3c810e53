"""This app's own stacks: the trainstack library builds the platform; `environments` picks the files it builds."""
