"""The account web pages at /account/ (mox.webaccount.site) and the small pieces they share with
the admin pages: HTML builders, config editing and the web login history."""
