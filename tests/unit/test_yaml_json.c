/*
 * test_yaml_json.c: YAML to JSON (yaml_json.h): core-schema scalars,
 * anchors, merge keys, and errors with line/column.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "xdsnode/yaml_json.h"

static void expect_json(const char *yaml, const char *expected_text)
{
    char err[256] = "";
    json_error_t jerr;
    json_t *got = yaml_json_parse(yaml, strlen(yaml), err, sizeof(err));
    json_t *expected = json_loads(expected_text, JSON_DECODE_ANY, &jerr);
    char *dump;

    cr_assert_not_null(expected, "bad test JSON: %s", jerr.text);
    cr_assert_not_null(got, "parse failed: %s", err);
    dump = json_dumps(got, JSON_ENCODE_ANY | JSON_COMPACT);
    cr_assert(json_equal(got, expected), "got %s, expected %s", dump, expected_text);
    free(dump);
    json_decref(got);
    json_decref(expected);
}

static void expect_error(const char *yaml, const char *expected)
{
    char err[256] = "";
    json_t *got = yaml_json_parse(yaml, strlen(yaml), err, sizeof(err));

    cr_assert_null(got, "parse of %s unexpectedly succeeded", yaml);
    cr_assert_str_eq(err, expected);
}

Test(yaml_json, scalars_core_schema)
{
    expect_json("a: 1\nb: -2\nc: 1.5\nd: true\ne: False\nf: null\ng: ~\nh:\ni: hello\n"
                "j: 5s\nk: 0x1F\nl: 0o17\nm: 1e3\nn: +7\no: 1.2.3\n",
                "{\"a\": 1, \"b\": -2, \"c\": 1.5, \"d\": true, \"e\": false, \"f\": null,"
                " \"g\": null, \"h\": null, \"i\": \"hello\", \"j\": \"5s\", \"k\": 31,"
                " \"l\": 15, \"m\": 1000.0, \"n\": 7, \"o\": \"1.2.3\"}");
}

Test(yaml_json, quoted_scalars_are_strings)
{
    expect_json("a: \"1\"\nb: 'true'\nc: \"\"\nd: !!str 5\ne: \"null\"\n",
                "{\"a\": \"1\", \"b\": \"true\", \"c\": \"\", \"d\": \"5\", \"e\": \"null\"}");
}

Test(yaml_json, special_floats)
{
    expect_json("[.inf, -.inf, .nan]", "[\"Infinity\", \"-Infinity\", \"NaN\"]");
}

Test(yaml_json, nested_structure)
{
    expect_json("static_resources:\n"
                "  clusters:\n"
                "  - name: backend\n"
                "    connect_timeout: 0.25s\n"
                "    load_assignment:\n"
                "      endpoints: [{lb_endpoints: []}]\n",
                "{\"static_resources\": {\"clusters\": [{\"name\": \"backend\","
                " \"connect_timeout\": \"0.25s\","
                " \"load_assignment\": {\"endpoints\": [{\"lb_endpoints\": []}]}}]}}");
}

Test(yaml_json, block_scalars)
{
    expect_json("a: |\n  line1\n  line2\nb: >\n  folded\n  text\n",
                "{\"a\": \"line1\\nline2\\n\", \"b\": \"folded text\\n\"}");
}

Test(yaml_json, anchors_and_aliases)
{
    expect_json("base: &b {x: 1, y: [1, 2]}\ncopy: *b\nscalar: &s hi\nagain: *s\n",
                "{\"base\": {\"x\": 1, \"y\": [1, 2]}, \"copy\": {\"x\": 1, \"y\": [1, 2]},"
                " \"scalar\": \"hi\", \"again\": \"hi\"}");
}

Test(yaml_json, merge_keys)
{
    expect_json("defaults: &d {timeout: 1s, retries: 3}\n"
                "svc:\n  name: a\n  <<: *d\n  retries: 5\n",
                "{\"defaults\": {\"timeout\": \"1s\", \"retries\": 3},"
                " \"svc\": {\"name\": \"a\", \"retries\": 5, \"timeout\": \"1s\"}}");
    expect_json("a: &a {x: 1}\nb: &b {x: 2, y: 2}\nc:\n  <<: [*a, *b]\n",
                "{\"a\": {\"x\": 1}, \"b\": {\"x\": 2, \"y\": 2}, \"c\": {\"x\": 1, \"y\": 2}}");
    expect_json("a: {\"<<\": 1}", "{\"a\": {\"<<\": 1}}");
}

Test(yaml_json, empty_document_is_empty_object)
{
    expect_json("", "{}");
    expect_json("# just a comment\n", "{}");
    expect_json("---\n", "{}");
    expect_json("--- ~\n", "null");
}

Test(yaml_json, root_scalar_and_sequence)
{
    expect_json("hello", "\"hello\"");
    expect_json("- 1\n- two\n", "[1, \"two\"]");
}

Test(yaml_json, error_duplicate_key)
{
    expect_error("a: 1\nb: 2\na: 3\n", "line 3, column 1: duplicate key \"a\"");
    expect_error("x:\n  y: 1\n  y: 2\n", "line 3, column 3: duplicate key \"y\"");
}

Test(yaml_json, error_syntax)
{
    expect_error("a: b: c\n",
                 "line 1, column 5: mapping values are not allowed in this context");
    expect_error("a: [1, 2\n",
                 "line 2, column 1: did not find expected ',' or ']' while parsing a flow sequence");
}

Test(yaml_json, error_unknown_anchor)
{
    expect_error("a: *nope\n", "line 1, column 4: unknown anchor \"nope\"");
}

Test(yaml_json, error_bad_merge)
{
    expect_error("a:\n  <<: 5\n",
                 "line 2, column 3: merge value must be a mapping or a list of mappings");
}

Test(yaml_json, error_multiple_documents)
{
    expect_error("a: 1\n---\nb: 2\n", "line 2, column 1: expected a single document");
}

Test(yaml_json, error_complex_key)
{
    expect_error("? [1]\n: x\n", "line 1, column 3: mapping keys must be scalars");
}

Test(yaml_json, alias_bomb_is_refused)
{
    const char *bomb = "a: &a [1,1,1,1,1,1,1,1,1,1]\n"
                       "b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
                       "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
                       "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
                       "e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
                       "f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e,*e]\n";
    char err[256] = "";

    cr_assert_null(yaml_json_parse(bomb, strlen(bomb), err, sizeof(err)));
    cr_assert(strstr(err, "too many values from aliases") != NULL, "%s", err);
}
