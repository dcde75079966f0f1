"""The admin web pages at /admin/ (mox.webadmin.site)."""
