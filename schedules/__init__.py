"""Campaign plans and the scheduler that runs the bot's periodic jobs."""
