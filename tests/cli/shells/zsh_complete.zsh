# What a real interactive zsh offers at TAB: `zsh -f zsh_complete.zsh MODE DIR "line"`.
# MODE `fpath`: DIR is put on $fpath before compinit (the file is autoloaded);
# MODE `source`: DIR/_continuum is sourced after compinit (the ~/.zshrc way).
# A pty runs the interactive shell; compadd is wrapped to print what the completion system
# adds, between <hit> and <end> markers. Prints the candidates, one per line.
zmodload zsh/zpty || exit 2
zpty shell zsh -f -i
zpty -w shell "PROMPT=''"
if [[ $1 == fpath ]]; then
  zpty -w shell "fpath=(${(q)2} \$fpath); autoload -U compinit; compinit -u -d ${(q)3}.dump"
else
  zpty -w shell "autoload -U compinit; compinit -u -d ${(q)3}.dump; source ${(q)2}/_continuum"
fi
zpty -w shell 'compadd () {
  if [[ ${@[1,(i)(-|--)]} == *-(O|A|D)\ * ]]; then builtin compadd "$@"; return $?; fi
  typeset -a hits
  builtin compadd -A hits "$@"
  (( $#hits )) && print -r -- "<hit>${(j:<hit>:)hits}<end>"
  builtin compadd "$@"
}'
zpty -w shell "bindkey '^I' complete-word"
zpty -w shell "print -r -- '<re''ady>'"  # the echo of this line does not match the pattern
zpty -r shell line '*<ready>*'
zpty -w -n shell "$4"$'\t'
zpty -r shell out '*<end>*'
print -rl -- ${(s:<hit>:)${${out#*<hit>}%<end>*}}
zpty -d shell
