"""The contract suite's options and fixtures (`pytest contract --help` lists them under
"Runpod endpoint contract"); the machinery lives in runpod_testkit.suite."""

pytest_plugins = ["runpod_testkit.suite.plugin"]
