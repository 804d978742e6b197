"""The console's pages, one router per area; `bot.web.server` assembles them."""
