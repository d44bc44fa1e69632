"""The DynamoDB adapter: one module per aggregate, all keys and conditional writes of wxloop live here.

``codec`` holds the marshaller and the one call wrapper (every failure is a ``RepositoryError``); ``keys``
every table key; then ``identities``, ``people``, ``credits``, ``tokens``, ``jobs``, ``rulesets``,
``journey``. Import the module you need (``from wxloop.adapters.dynamo import identities``).
"""
