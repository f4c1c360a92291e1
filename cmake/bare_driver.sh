#!/bin/sh
# The least a driver can be, for the suite's own tests: it answers hello
# (protocol 2, no capabilities) and Unsupported to everything else.
while IFS= read -r line; do
  id=$(printf '%s' "$line" | sed -n 's/.*"id":\([0-9-]*\).*/\1/p')
  case $line in
    *'"op":"hello"'*) printf '{"id":%s,"ok":true,"protocol":2,"name":"bare","version":"0","capabilities":[]}\n' "${id:-0}" ;;
    *) printf '{"id":%s,"ok":false,"error":"Unsupported","detail":"the bare driver does nothing"}\n' "${id:--1}" ;;
  esac
done
