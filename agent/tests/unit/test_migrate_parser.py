"""keepalived.conf lexer and parser: comments, quotes, blocks, includes, conditionals, definitions, errors."""

from __future__ import annotations

import os

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hanode.migrate.keepalived import (KeepalivedParseError, expand_braces, parse_file, parse_text,
                                       split_quoted_escaped, split_words, translate)


def tree(nodes):
    """Nodes as comparable data: (keyword, args, line) or (keyword, args, line, [children])."""
    out = []
    for n in nodes:
        entry = (n.keyword, n.args, n.line)
        out.append(entry if n.children is None else entry + (tree(n.children),))
    return out


def parse(text, **kwargs):
    return parse_text(text, "k.conf", **kwargs).nodes


# ----- comments and quotes --------------------------------------------------------------------------------

@pytest.mark.parametrize("text, expected", [
    ("! a comment\n# another\nrouter_id r1\n", [("router_id", ["r1"], 3)]),
    ("router_id r1 # trailing\n", [("router_id", ["r1"], 1)]),
    ("router_id r1! bang right after a word\n", [("router_id", ["r1"], 1)]),
    ("   \t\n\nrouter_id r1\n\n", [("router_id", ["r1"], 3)]),
    ('notify "/bin/echo # not a comment ! either"\n', [("notify", ["/bin/echo # not a comment ! either"], 1)]),
    ("auth_pass ab\\#cd\\!\n", [("auth_pass", ["ab#cd!"], 1)]),
    ('script "a b"c d\n', [("script", ["a b", "c", "d"], 1)]),
    ("router_id r1\r\nvrrp_version 3\r\n", [("router_id", ["r1"], 1), ("vrrp_version", ["3"], 2)]),
])
def test_comments_quotes_and_line_numbers(text, expected):
    assert tree(parse(text)) == expected


def test_unterminated_quote_is_an_error_with_its_line():
    with pytest.raises(KeepalivedParseError) as err:
        parse('router_id r1\nnotify_master "/bin/true\n')
    assert (err.value.file, err.value.line) == ("k.conf", 2)
    assert "unterminated quote" in str(err.value)
    assert str(err.value).startswith("k.conf:2: ")


@pytest.mark.parametrize("text, words", [
    ("plain words", ["plain", "words"]),
    ('"one word" two', ["one word", "two"]),
    ("'single quotes' too", ["single quotes", "too"]),
    (r'a\ b "c\"d" \x41\101\t', ["a b", 'c"d', "AA\t"]),
    (r"killall -0 'my proc'", ["killall", "-0", "my proc"]),
])
def test_scripts_are_split_like_keepalived(text, words):
    assert split_quoted_escaped(text) == words


def test_split_errors():
    with pytest.raises(ValueError):
        split_quoted_escaped("'open")
    with pytest.raises(ValueError):
        split_words('"open')


# ----- blocks -------------------------------------------------------------------------------------------

def test_block_on_the_same_line_the_next_line_and_one_line():
    text = """vrrp_instance VI_1 {
    authentication { auth_type PASS }
    virtual_ipaddress
    {
        198.51.100.10/24 dev eth0 label eth0:vip
    }
}
"""
    assert tree(parse(text)) == [
        ("vrrp_instance", ["VI_1"], 1, [
            ("authentication", [], 2, [("auth_type", ["PASS"], 2)]),
            ("virtual_ipaddress", [], 3, [("198.51.100.10/24", ["dev", "eth0", "label", "eth0:vip"], 5)]),
        ]),
    ]


def test_braces_split_words_and_close_several_blocks_on_one_line():
    text = 'virtual_server 198.51.100.100 80{real_server 203.0.113.11 80{TCP_CHECK{connect_timeout 3}}}\n'
    assert tree(parse(text)) == [
        ("virtual_server", ["198.51.100.100", "80"], 1, [
            ("real_server", ["203.0.113.11", "80"], 1, [
                ("TCP_CHECK", [], 1, [("connect_timeout", ["3"], 1)]),
            ]),
        ]),
    ]


def test_a_quoted_brace_is_text():
    assert tree(parse('notify "/bin/echo {x}"\n')) == [("notify", ["/bin/echo {x}"], 1)]


def test_empty_block():
    assert tree(parse("global_defs {\n}\n")) == [("global_defs", [], 1, [])]


@pytest.mark.parametrize("text, line, message", [
    ("global_defs {\n  router_id r1\n}\n}\n", 4, "'}' without a matching '{'"),
    ("global_defs {\n  router_id r1\n", 1, "block 'global_defs' is never closed"),
    ("vrrp_instance VI_1 {\n  virtual_ipaddress {\n    198.51.100.1\n}\n", 1, "block 'vrrp_instance' is never closed"),
    ("{\nrouter_id r1\n}\n", 1, "'{' without a keyword before it"),
    ("global_defs {\n}\n{\n}\n", 3, "'{' without a keyword before it"),
    ("vrrp_instance VI_1 {\n  state {{STATE}}\n}\n", 2, "'{' without a keyword before it"),   # an unrendered template
])
def test_brace_errors_name_the_line(text, line, message):
    with pytest.raises(KeepalivedParseError) as err:
        parse(text)
    assert err.value.line == line
    assert message in err.value.message


# ----- conditionals and definitions -----------------------------------------------------------------------

CONDITIONAL = """@high priority 170
@low priority 85
@^high advert_int 2
"""


@pytest.mark.parametrize("config_id, expected", [
    ("high", [("priority", ["170"], 1)]),
    ("low", [("priority", ["85"], 2), ("advert_int", ["2"], 3)]),
    (None, [("advert_int", ["2"], 3)]),
])
def test_conditional_lines_follow_the_config_id(config_id, expected):
    parsed = parse_text(CONDITIONAL, "k.conf", config_id=config_id)
    assert tree(parsed.nodes) == expected
    skipped = {n.line for n in parsed.notes}
    assert skipped == {1, 2, 3} - {line for _keyword, _values, line in expected}


def test_definitions_are_substituted():
    text = "$IF=eth1\n$VIP=198.51.100.10/24\nvrrp_instance VI_1 {\n interface $IF\n virtual_ipaddress {\n  ${VIP} dev $IF\n }\n}\n"
    assert tree(parse(text)) == [("vrrp_instance", ["VI_1"], 3, [
        ("interface", ["eth1"], 4),
        ("virtual_ipaddress", [], 5, [("198.51.100.10/24", ["dev", "eth1"], 6)]),
    ])]


def test_unknown_dollar_words_are_left_alone():
    assert tree(parse('$A=1\nnotify "/bin/sh -c \'echo $1 $HOME\'"\n')) == [("notify", ["/bin/sh -c 'echo $1 $HOME'"], 2)]


@pytest.mark.parametrize("text, line, message", [
    ("router_id r1\n$MULTI=a \\\n b\n", 2, "multi-line $MULTI definition"),
    ("~SEQ(i, 1, 3) router_id r$i\n", 1, "~SEQ"),
    ("router_id $_RANDOM\n", 1, "$_RANDOM cannot be reproduced"),
])
def test_macros_the_importer_cannot_reproduce_are_errors(text, line, message):
    with pytest.raises(KeepalivedParseError) as err:
        parse(text)
    assert err.value.line == line and message in err.value.message


def test_instance_definition_is_the_config_id():
    assert tree(parse("router_id node-$_INSTANCE\n", config_id="n1")) == [("router_id", ["node-n1"], 1)]


@pytest.mark.parametrize("text", [
    "vrrp_instance lb_${_INSTANCE} {\n}\n",            # no $NAME definition of its own (was read as lb_$)
    "$X=1\nvrrp_instance lb_${_INSTANCE} {\n}\n",
])
def test_predefined_instance_in_braces_is_expanded_in_every_file(text):
    nodes = parse(text, config_id="n1")
    assert [(n.keyword, n.args) for n in nodes] == [("vrrp_instance", ["lb_n1"])]


def test_predefined_instance_without_a_config_id_is_an_error_not_a_silent_misread():
    with pytest.raises(KeepalivedParseError) as err:
        parse("vrrp_instance lb_${_INSTANCE} {\n}\n")
    assert err.value.line == 1 and "$_INSTANCE cannot be reproduced" in err.value.message


def test_hash_and_bang_survive_comment_removal():
    nodes = parse('notify "/bin/echo ${_HASH}1 ${_BANG}2" # gone\n')
    assert tree(nodes) == [("notify", ["/bin/echo #1 !2"], 1)]


def test_pwd_is_the_directory_of_the_file_being_read(tmp_path):
    main = write(tmp_path / "etc/keepalived.conf", "include conf.d/a.conf\nnotify ${_PWD}/top.sh\n")
    write(tmp_path / "etc/conf.d/a.conf", "notify_master ${_PWD}/inner.sh\n")
    nodes = parse_file(str(main)).nodes
    assert [(n.keyword, n.args) for n in nodes] == [
        ("notify_master", [str(tmp_path / "etc/conf.d/inner.sh")]), ("notify", [str(tmp_path / "etc/top.sh")])]
    cwd = os.getcwd()
    os.chdir(tmp_path / "etc")          # a relative file name: from the directory the importer runs in
    try:
        nodes = parse_file("keepalived.conf").nodes
    finally:
        os.chdir(cwd)
    assert nodes[1].args == [str(tmp_path / "etc/top.sh")]


def test_pwd_of_text_without_a_path_is_an_error():
    with pytest.raises(KeepalivedParseError) as err:
        parse("notify ${_PWD}/x.sh\n")
    assert "$_PWD cannot be reproduced" in err.value.message


# ----- includes ---------------------------------------------------------------------------------------------

def write(path, text, mode=0o644):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    os.chmod(path, mode)
    return path


def test_includes_are_relative_to_the_including_file_and_keep_their_own_lines(tmp_path):
    main = write(tmp_path / "etc/keepalived.conf", "global_defs {\n  router_id r1\n}\ninclude conf.d/*.conf\n")
    write(tmp_path / "etc/conf.d/20-b.conf", "vrrp_script b {\n  script /bin/true\n}\n")
    write(tmp_path / "etc/conf.d/10-a.conf", "\n\ninclude ../scripts/s.inc\nvrrp_script a {\n  script /bin/true\n}\n")
    write(tmp_path / "etc/scripts/s.inc", "vrrp_script s {\n  script /bin/true\n}\n")
    cwd = os.getcwd()
    os.chdir("/")  # relative to the file, not to the process
    try:
        parsed = parse_file(str(main))
    finally:
        os.chdir(cwd)
    where = [(n.args[0] if n.args else n.keyword, os.path.relpath(n.file, tmp_path), n.line) for n in parsed.nodes]
    assert where == [
        ("global_defs", "etc/keepalived.conf", 1),
        ("s", "etc/scripts/s.inc", 1),
        ("a", "etc/conf.d/10-a.conf", 4),
        ("b", "etc/conf.d/20-b.conf", 1),
    ]
    assert parsed.nodes[1].children[0].line == 2


def test_include_inside_a_block_and_brace_expansion(tmp_path):
    main = write(tmp_path / "k.conf", "vrrp_instance VI_1 {\n  include {vips,peers}.inc\n}\n")
    write(tmp_path / "vips.inc", "virtual_ipaddress {\n  198.51.100.10\n}\n")
    write(tmp_path / "peers.inc", "unicast_peer {\n  198.51.100.12\n}\n")
    nodes = parse_file(str(main)).nodes
    assert [(c.keyword, os.path.basename(c.file)) for c in nodes[0].children] == [
        ("virtual_ipaddress", "vips.inc"), ("unicast_peer", "peers.inc")]


def test_include_skips_what_keepalived_skips_and_says_so(tmp_path):
    main = write(tmp_path / "k.conf", "include nothing-*.conf\ninclude d/*\nrouter_id r1\n")
    write(tmp_path / "d/run.sh", "router_id evil\n", mode=0o755)
    (tmp_path / "d/sub").mkdir()
    parsed = parse_file(str(main))
    assert tree(parsed.nodes) == [("router_id", ["r1"], 3)]
    messages = [(n.line, n.message) for n in parsed.notes]
    assert messages[0] == (1, "nothing-*.conf matched no file (keepalived skips it too)")
    assert messages[1][0] == 2 and "run.sh skipped: not a regular non-executable file" in messages[1][1]


def test_include_loop_is_an_error(tmp_path):
    main = write(tmp_path / "k.conf", "router_id r1\ninclude other.conf\n")
    write(tmp_path / "other.conf", "\ninclude k.conf\n")
    with pytest.raises(KeepalivedParseError) as err:
        parse_file(str(main))
    assert err.value.file.endswith("other.conf") and err.value.line == 2
    assert "include loop" in err.value.message


def test_errors_in_included_files_name_that_file(tmp_path):
    main = write(tmp_path / "k.conf", "include bad.conf\n")
    write(tmp_path / "bad.conf", "global_defs {\n router_id r1\n}\n}\n")
    with pytest.raises(KeepalivedParseError) as err:
        parse_file(str(main))
    assert (os.path.basename(err.value.file), err.value.line) == ("bad.conf", 4)


def test_text_only_parsing_reports_includes_instead_of_reading_them():
    parsed = parse_text("router_id r1\ninclude /etc/keepalived/conf.d/*.conf\n", "k.conf")
    assert tree(parsed.nodes) == [("router_id", ["r1"], 1)]
    [item] = parsed.items
    assert (item.line, item.keyword, item.category) == (2, "include", "unsupported")
    assert "only the text of one file was given" in item.reason


def test_brace_expansion():
    assert expand_braces("a{b,c{d,e}}f") == ["abf", "acdf", "acef"]
    assert expand_braces("plain") == ["plain"]


def test_an_unreadable_file_is_an_oserror(tmp_path):
    with pytest.raises(OSError):
        parse_file(str(tmp_path / "missing.conf"))


# ----- robustness -----------------------------------------------------------------------------------------

PIECES = st.sampled_from([
    "vrrp_instance", "VI_1", "virtual_server", "198.51.100.1", "80", "real_server", "HTTP_GET", "url", "path", "/",
    "virtual_ipaddress", "track_script", "vrrp_script", "script", "global_defs", "router_id", "weight", "-20",
    "reverse", "authentication", "auth_type", "AH", "notify", "group", "vrrp_sync_group", "include", "x.conf",
    "{", "}", '"', "'", "#", "!", "\\", "@n1", "@^n1", "$A=1", "$A", "${A}", "~SEQ", " ", "\t", "\n", "\n", "\n",
    "interface", "eth0", "priority", "100", "state", "MASTER", "sorry_server", "status_code", "200-299",
])


@settings(max_examples=400, deadline=None)
@given(st.lists(PIECES, max_size=60).map(" ".join))
def test_any_text_parses_or_fails_with_a_located_parse_error(text):
    try:
        parsed = parse_text(text, "k.conf", config_id="n1")
    except KeepalivedParseError as exc:
        assert exc.file == "k.conf" and exc.line >= 1
        return
    result = translate(parsed)
    assert isinstance(result.config, dict)
    for item in result.items:
        assert item.line >= 1 and item.category in ("unsupported", "deprecated", "no meaning here", "invalid")


@pytest.mark.parametrize("keyword, invalid", [
    ("include", []), ("includer", []), ("includem", ["match"]), ("includew", ["match", "wildcard_match"]),
    ("includeb", []), ("includea", ["match", "wildcard_match"]),
])
def test_include_variants_follow_files_and_report_what_their_checks_flag(tmp_path, keyword, invalid):
    main = write(tmp_path / "k.conf", "%s present.conf\n%s missing.conf\n%s none-*.conf\nrouter_id r1\n"
                 % (keyword, keyword, keyword))
    write(tmp_path / "present.conf", "vrrp_version 3\n")
    parsed = parse_file(str(main))
    assert tree(parsed.nodes) == [("vrrp_version", ["3"], 1), ("router_id", ["r1"], 4)]
    flagged = sorted(item.reason.split("include_check ")[1].split()[0] for item in parsed.items)
    assert flagged == invalid
    assert all(item.category == "invalid" and item.keyword == keyword for item in parsed.items)


@pytest.mark.parametrize("keyword, followed", [("includer", True), ("includeb", False), ("includea", False)])
def test_a_missing_brace_alternative_drops_the_include_under_brace_match(tmp_path, keyword, followed):
    main = write(tmp_path / "k.conf", "%s {a,b}.conf\nrouter_id r1\n" % keyword)
    write(tmp_path / "a.conf", "vrrp_version 3\n")
    parsed = parse_file(str(main))
    assert ("vrrp_version" in [n.keyword for n in parsed.nodes]) == followed
    assert [i.category for i in parsed.items] == ([] if followed else ["invalid"])


def test_includer_flags_an_executable_file(tmp_path):
    main = write(tmp_path / "k.conf", "includer x.conf\n")
    write(tmp_path / "x.conf", "router_id evil\n", mode=0o755)
    parsed = parse_file(str(main))
    assert parsed.nodes == [] and len(parsed.items) == 1 and "readable" in parsed.items[0].reason
