"""Hot reload: what changed between two configs (`diff`), noticing a changed file
(`watcher`), and finding a running router to signal (`pidfile`). Applying a config is
`Service.apply` (service.py)."""
