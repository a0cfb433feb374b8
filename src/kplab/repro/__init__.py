"""The seed scenario end to end: four variants side by side, the story of one reset, the matrix."""
