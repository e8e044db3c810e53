"""The platform as CDK constructs: one Stage per environment (`platform_stage.PlatformStage`), its stacks, and
the constructs they are built from (`constructs/`, one per file)."""
