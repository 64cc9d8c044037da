"""What every supervised program does at start and in its loop."""
