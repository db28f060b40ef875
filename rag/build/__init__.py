"""Build time: articles cut into chunks, embedded and written as an index, a snapshot, or a change to one."""
