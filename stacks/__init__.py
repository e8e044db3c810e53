"""CDK stacks of one trainstack environment; `platform_stage.PlatformStage` wires them together."""
