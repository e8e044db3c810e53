"""Testing a CDK app built on trainstack offline: `pip install trainstack[offline]` registers
`trainstack.testing.pytest_plugin` with pytest (the `pytest11` entry point)."""
