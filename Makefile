# Shortcuts for the README's two commands (which work without make on a fresh machine).
.PHONY: demo test setup clean
demo:
	bash scripts/demo.sh
test:
	bash scripts/test.sh
setup:
	bash scripts/setup.sh --with-services
clean:
	rm -rf var test-artifacts .pytest_cache
