"""ctool: installs and operates Voedger clusters over SSH, with Ansible as its engine."""
