/* prime-test-delete-records BROKERS TOPIC PARTITION OFFSET: deletes the
 * partition's records below OFFSET (Kafka's DeleteRecords, what retention
 * does), so that a test can truncate a topic's history. Exit 0 when the
 * broker confirms the new low watermark. */
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>

int main(int argc, char **argv)
{
    char errstr[512];
    rd_kafka_conf_t *conf = rd_kafka_conf_new();
    rd_kafka_t *rk;
    int rc = 1;

    if (argc != 5) {
        fprintf(stderr, "usage: prime-test-delete-records BROKERS TOPIC PARTITION OFFSET\n");
        return 2;
    }
    if (rd_kafka_conf_set(conf, "bootstrap.servers", argv[1], errstr, sizeof(errstr)) ||
        !(rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr)))) {
        fprintf(stderr, "prime-test-delete-records: %s\n", errstr);
        return 1;
    }
    rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(1);
    rd_kafka_topic_partition_list_add(list, argv[2], atoi(argv[3]))->offset = atoll(argv[4]);
    rd_kafka_DeleteRecords_t *del = rd_kafka_DeleteRecords_new(list);
    rd_kafka_queue_t *q = rd_kafka_queue_new(rk);
    rd_kafka_DeleteRecords(rk, &del, 1, NULL, q);
    rd_kafka_event_t *ev = rd_kafka_queue_poll(q, 30000);
    if (!ev) {
        fprintf(stderr, "prime-test-delete-records: no answer within 30 s\n");
    } else if (rd_kafka_event_error(ev)) {
        fprintf(stderr, "prime-test-delete-records: %s\n", rd_kafka_event_error_string(ev));
    } else {
        const rd_kafka_topic_partition_list_t *res =
            rd_kafka_DeleteRecords_result_offsets(rd_kafka_event_DeleteRecords_result(ev));
        if (res && res->cnt == 1 && !res->elems[0].err) {
            printf("%s [%d]: low watermark %lld\n", argv[2], res->elems[0].partition, (long long)res->elems[0].offset);
            rc = 0;
        } else {
            fprintf(stderr, "prime-test-delete-records: %s\n",
                    res && res->cnt ? rd_kafka_err2str(res->elems[0].err) : "no result");
        }
    }
    if (ev)
        rd_kafka_event_destroy(ev);
    rd_kafka_queue_destroy(q);
    rd_kafka_DeleteRecords_destroy(del);
    rd_kafka_topic_partition_list_destroy(list);
    rd_kafka_destroy(rk);
    return rc;
}
