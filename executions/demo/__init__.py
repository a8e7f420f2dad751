"""The demo: a tiny app in a real local git repository and the pipeline that ships it.

``manage.py load_demo`` builds it (see executions/management/commands/load_demo.py);
``app/`` holds the app's files and ``hooks/conveyor_hook.py`` the git hook that
tells Conveyor about new commits (docs/post-receive.md).
"""
