package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/cloudformation"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"github.com/pushfn/pushfn/shared/local/emulator"
	"github.com/pushfn/pushfn/shared/queue"
)

const redriveUsage = `usage: pushfn redrive (--stack NAME | --queue-url URL | --local [--queue NAME]) [flags]

Moves the messages of the delivery queue's dead-letter queue (read from the queue's redrive
policy) back to the queue, where the deliver function delivers them again: a message recorded
failed (dead_lettered) is deliverable again.

  --stack NAME     a deployed SAM stack: its QueueUrl output names the queue
  --queue-url URL  the delivery queue itself
  --local          a local run's queue, by name (--queue, as pushfn run names it), in the
                   emulators (AWS_ENDPOINT_URL_SQS when set, else PUSHFN_SQS_PORT)

Against AWS it starts SQS's own message move task and follows it to its end. When
AWS_ENDPOINT_URL_SQS is set (an emulator, which has no move task) the messages are received,
sent to the queue and only then deleted from the dead-letter queue, 10 at a time.

flags:
`

// redriveOptions are the flags of pushfn redrive.
type redriveOptions struct {
	stack, queueURL, queueName string
	local                      bool
	max, rate                  int
}

// errRedriveUsage is a command line pushfn redrive cannot run.
var errRedriveUsage = errors.New("redrive")

func parseRedriveFlags(args []string, stderr io.Writer) (redriveOptions, error) {
	var o redriveOptions
	fs := flag.NewFlagSet("redrive", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, redriveUsage); fs.PrintDefaults() }
	fs.StringVar(&o.stack, "stack", "", "the deployed SAM stack whose QueueUrl output is the queue")
	fs.StringVar(&o.queueURL, "queue-url", "", "the URL of the delivery queue")
	fs.BoolVar(&o.local, "local", false, "the queue of a local run, in the emulators")
	fs.StringVar(&o.queueName, "queue", defaultQueue, "with --local: the queue's name, the one pushfn run uses")
	fs.IntVar(&o.max, "max", 0, "move at most this many messages (0: all); not with SQS's move task")
	fs.IntVar(&o.rate, "rate", 0, fmt.Sprintf("SQS's move task: at most this many messages a second, 1 to %d (0: SQS's pace)", queue.MaxMoveRate))
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("%w: unexpected argument %q", errRedriveUsage, fs.Arg(0))
	}
	named := 0
	for _, set := range []bool{o.stack != "", o.queueURL != "", o.local} {
		if set {
			named++
		}
	}
	queueSet := false
	fs.Visit(func(f *flag.Flag) { queueSet = queueSet || f.Name == "queue" })
	switch {
	case named != 1:
		return o, fmt.Errorf("%w: name the queue with exactly one of --stack, --queue-url and --local", errRedriveUsage)
	case queueSet && !o.local:
		return o, fmt.Errorf("%w: --queue names a local run's queue: use it with --local", errRedriveUsage)
	case o.local && o.queueName == "":
		return o, fmt.Errorf("%w: --queue is empty", errRedriveUsage)
	case o.max < 0:
		return o, fmt.Errorf("%w: --max %d is negative", errRedriveUsage, o.max)
	case o.rate < 0 || o.rate > queue.MaxMoveRate:
		return o, fmt.Errorf("%w: --rate %d is outside 0 to %d", errRedriveUsage, o.rate, queue.MaxMoveRate)
	}
	return o, nil
}

// redriveCmd runs pushfn redrive.
func redriveCmd(ctx context.Context, args []string) error {
	return redriveWith(ctx, args, os.Getenv, os.Stdout, os.Stderr)
}

// redriveWith runs pushfn redrive with the environment getenv, printing to stdout and stderr.
func redriveWith(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	o, err := parseRedriveFlags(args, stderr)
	if err != nil {
		return err
	}
	endpoint := getenv("AWS_ENDPOINT_URL_SQS")
	if o.local && endpoint == "" {
		eo, err := emulator.OptionsFromEnv(getenv)
		if err != nil {
			return err
		}
		endpoint = eo.SQSEndpoint()
	}
	if endpoint != "" && !reachable(endpoint) {
		return fmt.Errorf("%w at %s: start the emulators (pushfn emulators up) or pushfn run", errNoSQS, endpoint)
	}
	var cfg aws.Config
	if o.stack != "" || endpoint == "" {
		cfg, err = deployedConfig(ctx)
	} else {
		cfg, err = localConfig(ctx, getenv)
	}
	if err != nil {
		return err
	}
	client := sqs.NewFromConfig(cfg, func(so *sqs.Options) {
		if endpoint != "" {
			so.BaseEndpoint = aws.String(endpoint)
		}
	})
	r := redriver{sqs: client, out: stdout, copy: endpoint != "", poll: 5 * time.Second}
	if o.stack != "" {
		r.stacks = cloudformation.NewFromConfig(cfg)
	}
	return r.run(ctx, o)
}

// deployedConfig loads the AWS configuration as the AWS CLI and SAM CLI would: a command against
// a deployed stack uses the shell's credentials and region, never local placeholders.
func deployedConfig(ctx context.Context) (aws.Config, error) {
	cfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return aws.Config{}, fmt.Errorf("load AWS config: %w", err)
	}
	if cfg.Region == "" {
		return aws.Config{}, errors.New("no AWS region: set AWS_REGION (or a profile's region), as for sam deploy")
	}
	return cfg, nil
}

// errNoSQS: nothing listens at the SQS endpoint.
var errNoSQS = errors.New("no SQS answers")

// redriveSQS is what pushfn redrive calls of SQS.
type redriveSQS interface {
	queue.AttributesAPI
	queue.MoveAPI
	queue.MoveTaskAPI
}

var _ redriveSQS = (*sqs.Client)(nil)

// StacksAPI is the part of the CloudFormation client pushfn redrive calls.
type StacksAPI interface {
	DescribeStacks(ctx context.Context, in *cloudformation.DescribeStacksInput, optFns ...func(*cloudformation.Options)) (*cloudformation.DescribeStacksOutput, error)
}

var _ StacksAPI = (*cloudformation.Client)(nil)

// redriver runs one redrive with its clients.
type redriver struct {
	sqs    redriveSQS
	stacks StacksAPI // for --stack
	out    io.Writer
	copy   bool          // move message by message: the SQS at hand has no move task
	poll   time.Duration // between reads of a move task's state
}

func (r redriver) run(ctx context.Context, o redriveOptions) error {
	if !r.copy && o.max > 0 {
		return fmt.Errorf("%w: --max: SQS's move task moves every message; leave --max out against AWS", errRedriveUsage)
	}
	if r.copy && o.rate > 0 {
		return fmt.Errorf("%w: --rate sets the pace of SQS's move task, which an emulator has not; leave --rate out", errRedriveUsage)
	}
	queueURL := o.queueURL
	switch {
	case o.stack != "":
		var err error
		if queueURL, err = stackOutput(ctx, r.stacks, o.stack, "QueueUrl"); err != nil {
			return err
		}
	case o.local:
		u, err := r.sqs.GetQueueUrl(ctx, &sqs.GetQueueUrlInput{QueueName: aws.String(o.queueName)})
		if err != nil {
			return fmt.Errorf("find queue %s (the one pushfn run --queue %s creates): %w", o.queueName, o.queueName, err)
		}
		queueURL = aws.ToString(u.QueueUrl)
	}
	dl, err := queue.DeadLetterQueue(ctx, r.sqs, queueURL)
	if err != nil {
		return err
	}
	fmt.Fprintf(r.out, "dead-letter queue %s: %d messages, %d in flight\n", dl.DLQURL, dl.Visible, dl.InFlight)
	if dl.Visible == 0 {
		fmt.Fprintf(r.out, "moved 0 to %s\n", queueURL)
		return nil
	}
	if r.copy {
		n, err := queue.Move(ctx, r.sqs, dl.DLQURL, queueURL, o.max, func(moved int) {
			fmt.Fprintf(r.out, "moving: %d\n", moved)
		})
		fmt.Fprintf(r.out, "moved %d to %s\n", n, queueURL)
		return err
	}
	fmt.Fprintf(r.out, "starting SQS's message move task to %s\n", queueURL)
	task, err := queue.RunMoveTask(ctx, r.sqs, dl.DLQARN, dl.QueueARN, o.rate, r.poll, func(t queue.MoveTask) {
		if t.ToMove >= 0 {
			fmt.Fprintf(r.out, "%s: moved %d of %d\n", t.Status, t.Moved, t.ToMove)
		} else {
			fmt.Fprintf(r.out, "%s: moved %d\n", t.Status, t.Moved)
		}
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(r.out, "moved %d to %s\n", task.Moved, queueURL)
	return nil
}

// errNoOutput: the stack has no such output.
var errNoOutput = errors.New("no such output")

// stackOutput returns the value of output key of the deployed stack.
func stackOutput(ctx context.Context, api StacksAPI, stack, key string) (string, error) {
	out, err := api.DescribeStacks(ctx, &cloudformation.DescribeStacksInput{StackName: aws.String(stack)})
	if err != nil {
		return "", fmt.Errorf("describe stack %s: %w", stack, err)
	}
	if len(out.Stacks) != 1 {
		return "", fmt.Errorf("describe stack %s: %d stacks in the answer, want 1", stack, len(out.Stacks))
	}
	for _, o := range out.Stacks[0].Outputs {
		if aws.ToString(o.OutputKey) == key && aws.ToString(o.OutputValue) != "" {
			return aws.ToString(o.OutputValue), nil
		}
	}
	return "", fmt.Errorf("stack %s (%s): output %s: %w", stack, out.Stacks[0].StackStatus, key, errNoOutput)
}
