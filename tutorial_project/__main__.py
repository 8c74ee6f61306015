"""``python -m tutorial_project <command>``: this project's manage.py.

For example ``python -m tutorial_project migrate`` then
``python -m tutorial_project load_demo_data`` prepare the database that
``uvicorn tutorial_project.asgi:application`` serves.
"""

import os
import sys

from django.core.management import execute_from_command_line

if __name__ == "__main__":
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tutorial_project.settings")
    execute_from_command_line([f"{sys.executable} -m tutorial_project", *sys.argv[1:]])
