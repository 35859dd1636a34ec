"""Training runs shared by the recipes, `hf-softnce train` and the main job."""
