"""The ``tinyembed`` subcommands that live in modules of their own.

Each module has ``HELP`` (one line), ``add_arguments(parser)`` and
``run(args, parser) -> exit code``; :mod:`tinyembed.cli` registers them. They
parse arguments and call the library, nothing more. :mod:`.args` holds the
argument types they share.
"""
