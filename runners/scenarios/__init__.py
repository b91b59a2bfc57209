"""What is played: scenarios (meltingpot's and capprof's own suites, declared
in data/suites.yaml) and the bot assets they need."""
