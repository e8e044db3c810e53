"""trainstack: a hardened SageMaker training platform as a CDK app, with an embedded offline AWS."""

__version__ = "0.2.0"
