"""One router per resource: files, jobs, health, vertex (the test-only fault route is in `server/internal/`)."""
